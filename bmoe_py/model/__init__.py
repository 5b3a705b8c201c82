"""The model: MoE, gate, experts, float and exact-int8 execution, data sets, weight files.

- `int8_ref`: numpy reference of the exact integer arithmetic (docs/protocol.md 3), the ground truth
- `kernel`: the same arithmetic in PyTorch, bit for bit, CPU or CUDA (what edge nodes run)
- `moe`: the float MoE (top-k gate, load-balancing loss, Linear-ReLU-Linear experts)
- `data`, `train`: MNIST-1D and digits, made locally; training and accuracy
- `quantize`: float expert -> exact int8 expert; `exact`: the MoE with exact experts
- `weights`: canonical safetensors files of experts, gate and checkpoints, their roots, verified loading

Submodules are not imported here, so that `int8_ref` (used by the crypto and chain code) does not pull in torch.
"""
