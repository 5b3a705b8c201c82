// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IExpertRegistry} from "../interfaces/IExpertRegistry.sol";
import {IScreening} from "../interfaces/IScreening.sol";

/// @title Screening
/// @notice Flags and blacklistings of training nodes, per model, written by the model's owner as the registry
/// knows it (so an ownership transfer moves the right to screen with the model). Holds no ETH.
contract Screening is IScreening {
    /// @dev One slot per (model, node).
    struct Record {
        uint64 flagCount;
        uint64 lastFlagRound;
        bool blacklisted;
    }

    /// @notice Where model owners are looked up.
    IExpertRegistry public immutable registry;

    mapping(uint256 modelId => mapping(address node => Record)) private _records;

    /// @dev Reverts with the registry's UnknownModel for a model that does not exist.
    modifier onlyModelOwner(uint256 modelId) {
        if (msg.sender != registry.model(modelId).owner) revert NotModelOwner(modelId, msg.sender);
        _;
    }

    /// @param registry_ the registry whose model owners may screen their models
    constructor(IExpertRegistry registry_) {
        if (address(registry_) == address(0)) revert ZeroAddress();
        registry = registry_;
    }

    /// @inheritdoc IScreening
    function flag(uint256 modelId, address node, uint64 round, bytes32 reason, uint256 score)
        external
        onlyModelOwner(modelId)
    {
        if (node == address(0)) revert ZeroAddress();
        Record storage r = _records[modelId][node];
        r.flagCount += 1;
        r.lastFlagRound = round;
        emit Flagged(modelId, node, round, reason, score);
    }

    /// @inheritdoc IScreening
    function blacklist(uint256 modelId, address node, bytes32 evidence) external onlyModelOwner(modelId) {
        if (node == address(0)) revert ZeroAddress();
        Record storage r = _records[modelId][node];
        if (r.blacklisted) revert AlreadyBlacklisted(modelId, node);
        r.blacklisted = true;
        emit Blacklisted(modelId, node, evidence);
    }

    /// @inheritdoc IScreening
    function unblacklist(uint256 modelId, address node) external onlyModelOwner(modelId) {
        Record storage r = _records[modelId][node];
        if (!r.blacklisted) revert NotBlacklisted(modelId, node);
        r.blacklisted = false;
        emit Unblacklisted(modelId, node);
    }

    /// @inheritdoc IScreening
    function isBlacklisted(uint256 modelId, address node) external view returns (bool) {
        return _records[modelId][node].blacklisted;
    }

    /// @inheritdoc IScreening
    function flagCount(uint256 modelId, address node) external view returns (uint64) {
        return _records[modelId][node].flagCount;
    }

    /// @inheritdoc IScreening
    function lastFlagRound(uint256 modelId, address node) external view returns (uint64) {
        return _records[modelId][node].lastFlagRound;
    }
}
