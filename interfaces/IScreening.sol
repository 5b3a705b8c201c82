// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title On-chain record of screening: suspects flagged for priority sampling, and blacklisted nodes
/// @notice Screening (docs/protocol.md section 11) compares each trainer's reported statistics with its peers'. The
/// model owner records the outcome here so that every validator sees the same suspects: a flagged node has every
/// step of its training windows re-executed, and the coordinator names no blacklisted node trainer. The records carry
/// no economic consequence by themselves; slashing stays with the dispute modules.
interface IScreening {
    error ZeroAddress();
    error NotModelOwner(uint256 modelId, address caller);
    error AlreadyBlacklisted(uint256 modelId, address node);
    error NotBlacklisted(uint256 modelId, address node);

    /// @notice `node` was flagged as a suspect after training round `round`; `reason` names the test that fired
    /// (e.g. "robust-z:grad_norm"), `score` its statistic scaled by 1e6.
    event Flagged(uint256 indexed modelId, address indexed node, uint64 round, bytes32 reason, uint256 score);
    /// @notice `node` may no longer train the model; `evidence` points at why (e.g. the id of a lost dispute).
    event Blacklisted(uint256 indexed modelId, address indexed node, bytes32 evidence);
    event Unblacklisted(uint256 indexed modelId, address indexed node);

    /// @notice Records a flag of `node` after training round `round`. Model owner only.
    function flag(uint256 modelId, address node, uint64 round, bytes32 reason, uint256 score) external;

    /// @notice Blacklists `node` for the model. Model owner only.
    function blacklist(uint256 modelId, address node, bytes32 evidence) external;

    /// @notice Lifts a blacklisting (e.g. one recorded by mistake). Model owner only.
    function unblacklist(uint256 modelId, address node) external;

    /// @notice Whether `node` is blacklisted for the model.
    function isBlacklisted(uint256 modelId, address node) external view returns (bool);

    /// @notice How many times `node` was flagged for the model (validators sample every step of a flagged node).
    function flagCount(uint256 modelId, address node) external view returns (uint64);

    /// @notice The round of the latest flag of `node` for the model; zero when never flagged.
    function lastFlagRound(uint256 modelId, address node) external view returns (uint64);
}
