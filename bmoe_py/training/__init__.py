"""Training across edge nodes (docs/protocol.md 11): step records and replay (`records`), the trainers' HTTP client,
the coordinator that runs everything but the experts, and the TDML-style screening of trainers."""
