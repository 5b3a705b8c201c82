// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IStaking} from "../../interfaces/IStaking.sol";

/// @title StakerContract (tests only)
/// @notice A contract account that stakes, withdraws and slashes through Staking, and that can refuse the ETH
/// it is sent or re-enter Staking from its receive function. Tests use it for the paths no EOA can reach:
/// a failed ETH transfer and a reentrant withdrawal. Never deployed outside tests.
contract StakerContract {
    enum OnReceive {
        Accept,
        Refuse,
        Reenter
    }

    error Refused();

    IStaking public immutable staking;
    OnReceive public onReceive;

    constructor(IStaking staking_) {
        staking = staking_;
    }

    function setOnReceive(OnReceive mode) external {
        onReceive = mode;
    }

    function deposit() external payable {
        staking.deposit{value: msg.value}();
    }

    function requestUnbond(uint256 amount) external {
        staking.requestUnbond(amount);
    }

    function withdraw() external {
        staking.withdraw();
    }

    function slash(address account, uint256 amount) external returns (uint256) {
        return staking.slash(account, amount);
    }

    receive() external payable {
        if (onReceive == OnReceive.Refuse) revert Refused();
        if (onReceive == OnReceive.Reenter) staking.withdraw();
    }
}
