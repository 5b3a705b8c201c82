"""The publisher role: publish a model (IPFS + ExpertRegistry), load published files back verified, and run
inference with the experts on edge nodes under a verification policy.

    files = model_files(model, exact_experts)
    published = publish_model(chain, ipfs, files, PublishParams(challenge_window=DAY))
    expert = load_expert_from_chain(chain, ipfs, published.model_id, 0)
    with InferenceSession(chain, ipfs, published.model_id, Policy.parse("redundant:3")) as session:
        report = session.run(x, y)     # experts on the edge nodes the registry lists

Names are imported on first use: loading the model code imports torch (seconds), which the CLI should pay only
for the commands that run a model, not for `bmoe model show` or an error message.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "InsufficientFunds": "errors",
    "NotPublished": "errors",
    "PublishError": "errors",
    "WeightsMismatch": "errors",
    "LoadedExpert": "fetch",
    "LoadedGate": "fetch",
    "load_exact_model_from_chain": "fetch",
    "load_expert_from_chain": "fetch",
    "load_gate_from_chain": "fetch",
    "LoadedFloatExpert": "fetch",
    "load_float_expert_from_chain": "fetch",
    "float_model_files": "prepare",
    "PreparedModel": "prepare",
    "TrainingOptions": "prepare",
    "expert_file": "prepare",
    "model_files": "prepare",
    "prepare": "prepare",
    "ExpertFile": "publish",
    "GateFile": "publish",
    "ModelFiles": "publish",
    "PublishParams": "publish",
    "PublishedExpert": "publish",
    "PublishedModel": "publish",
    "publish_model": "publish",
    "ExpertRecord": "records",
    "HostRecord": "records",
    "LayerSpec": "records",
    "Mode": "records",
    "ModelRecord": "records",
    "read_expert": "records",
    "read_model": "records",
    "ChallengeOutcome": "challenge",
    "challenge_answer": "challenge",
    "post_receipt": "challenge",
    "ExpertUnavailable": "hosts",
    "HostDirectory": "hosts",
    "Policy": "policies",
    "PolicyError": "policies",
    "Vote": "policies",
    "majority_vote": "policies",
    "Answer": "remote",
    "HostClient": "remote",
    "HostError": "remote",
    "InvalidResponse": "remote",
    "verify_response": "remote",
    "InferenceSession": "runtime",
    "SessionError": "runtime",
    "DisputeRecord": "tasks",
    "TaskReport": "tasks",
    "close_task": "tasks",
    "create_task": "tasks",
    "fund_task": "tasks",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
