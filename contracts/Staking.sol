// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IStaking} from "../interfaces/IStaking.sol";

/// @title Staking
/// @notice Holds the stake of edge nodes and validators. Stake is either active (backs hosting and committee
/// duty) or unbonding (waits `unbondingDelay` seconds, stays slashable). The dispute modules wired once by the
/// deployer ("slashers") may lock an account for the length of a dispute and slash it.
/// @dev ETH leaves only in `withdraw` and `slash`; both follow checks-effects-interactions and are nonReentrant.
contract Staking is IStaking, ReentrancyGuard {
    struct Account {
        uint256 active;
        uint256 unbonding;
        uint256 readyAt;
        uint256 locks;
    }

    /// @inheritdoc IStaking
    uint256 public immutable unbondingDelay;

    /// @dev The only account allowed to call `setSlashers`, and only once.
    address private immutable _deployer;
    bool private _slashersSet;

    mapping(address account => Account) private _accounts;
    mapping(address slasher => bool) private _slashers;

    address[] private _validators;
    /// @dev Position in `_validators` plus one, so that zero means "not a validator".
    mapping(address account => uint256) private _validatorSlot;

    modifier onlySlasher() {
        if (!_slashers[msg.sender]) revert NotSlasher(msg.sender);
        _;
    }

    /// @param unbondingDelay_ seconds between an unbond request and the withdrawal; must exceed every
    /// challenge window plus the longest dispute (the registry checks this per model).
    constructor(uint256 unbondingDelay_) {
        if (unbondingDelay_ == 0) revert InvalidDelay();
        unbondingDelay = unbondingDelay_;
        _deployer = msg.sender;
    }

    // ---------------------------------------------------------------- stakers

    /// @inheritdoc IStaking
    function deposit() external payable {
        if (msg.value == 0) revert ZeroAmount();
        Account storage acc = _accounts[msg.sender];
        acc.active += msg.value;
        emit Deposited(msg.sender, msg.value, acc.active);
    }

    /// @inheritdoc IStaking
    function requestUnbond(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage acc = _accounts[msg.sender];
        if (amount > acc.active) revert InsufficientStake(acc.active, amount);
        acc.active -= amount;
        acc.unbonding += amount;
        acc.readyAt = block.timestamp + unbondingDelay;
        emit UnbondRequested(msg.sender, amount, acc.unbonding, acc.readyAt);
    }

    /// @inheritdoc IStaking
    function withdraw() external nonReentrant {
        Account storage acc = _accounts[msg.sender];
        uint256 amount = acc.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < acc.readyAt) revert UnbondingNotDue(acc.readyAt);
        if (acc.locks > 0) revert StakeLocked(msg.sender, acc.locks);

        acc.unbonding = 0;
        acc.readyAt = 0;
        emit Withdrawn(msg.sender, amount);

        _send(msg.sender, amount);
    }

    /// @inheritdoc IStaking
    /// @dev No minimum here: committee selection filters candidates by each model's minValidatorStake.
    function joinValidators() external {
        if (_validatorSlot[msg.sender] != 0) revert AlreadyValidator(msg.sender);
        if (_accounts[msg.sender].active == 0) revert InsufficientStake(0, 1);
        _validators.push(msg.sender);
        _validatorSlot[msg.sender] = _validators.length;
        emit ValidatorJoined(msg.sender);
    }

    /// @inheritdoc IStaking
    function leaveValidators() external {
        uint256 slot = _validatorSlot[msg.sender];
        if (slot == 0) revert NotAValidator(msg.sender);

        // Swap and pop: move the last validator into the leaver's place so the array stays dense.
        uint256 lastIndex = _validators.length - 1;
        if (slot - 1 != lastIndex) {
            address moved = _validators[lastIndex];
            _validators[slot - 1] = moved;
            _validatorSlot[moved] = slot;
        }
        _validators.pop();
        delete _validatorSlot[msg.sender];
        emit ValidatorLeft(msg.sender);
    }

    // ---------------------------------------------------------------- dispute modules

    /// @inheritdoc IStaking
    function setSlashers(address[] calldata slashers) external {
        if (msg.sender != _deployer) revert NotDeployer(msg.sender);
        if (_slashersSet) revert SlashersAlreadySet();
        _slashersSet = true;
        for (uint256 i = 0; i < slashers.length; ++i) {
            _slashers[slashers[i]] = true;
            emit SlasherSet(slashers[i]);
        }
    }

    /// @inheritdoc IStaking
    function lock(address account) external onlySlasher {
        uint256 locks = ++_accounts[account].locks;
        emit Locked(account, msg.sender, locks);
    }

    /// @inheritdoc IStaking
    function unlock(address account) external onlySlasher {
        Account storage acc = _accounts[account];
        if (acc.locks == 0) revert NotLocked(account);
        uint256 locks = --acc.locks;
        emit Unlocked(account, msg.sender, locks);
    }

    /// @inheritdoc IStaking
    function slash(address account, uint256 amount) external onlySlasher nonReentrant returns (uint256 taken) {
        Account storage acc = _accounts[account];

        uint256 fromActive = amount < acc.active ? amount : acc.active;
        uint256 rest = amount - fromActive;
        uint256 fromUnbonding = rest < acc.unbonding ? rest : acc.unbonding;
        taken = fromActive + fromUnbonding;
        if (taken == 0) return 0;

        acc.active -= fromActive;
        acc.unbonding -= fromUnbonding;
        emit Slashed(account, msg.sender, taken);

        _send(msg.sender, taken);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IStaking
    function stakeOf(address account) external view returns (uint256) {
        return _accounts[account].active;
    }

    /// @inheritdoc IStaking
    function unbondingOf(address account) external view returns (uint256 amount, uint256 readyAt) {
        Account storage acc = _accounts[account];
        return (acc.unbonding, acc.readyAt);
    }

    /// @inheritdoc IStaking
    function slashableOf(address account) external view returns (uint256) {
        Account storage acc = _accounts[account];
        return acc.active + acc.unbonding;
    }

    /// @inheritdoc IStaking
    function locksOf(address account) external view returns (uint256) {
        return _accounts[account].locks;
    }

    /// @inheritdoc IStaking
    function isSlasher(address account) external view returns (bool) {
        return _slashers[account];
    }

    /// @inheritdoc IStaking
    function isValidator(address account) external view returns (bool) {
        return _validatorSlot[account] != 0;
    }

    /// @inheritdoc IStaking
    function validatorCount() external view returns (uint256) {
        return _validators.length;
    }

    /// @inheritdoc IStaking
    function validatorAt(uint256 index) external view returns (address) {
        return _validators[index];
    }

    /// @inheritdoc IStaking
    function validators() external view returns (address[] memory) {
        return _validators;
    }

    // ---------------------------------------------------------------- internal

    function _send(address to, uint256 amount) private {
        (bool ok, ) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
