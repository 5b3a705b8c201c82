"""The validator role: watch commitments, re-execute a sample, and carry disputes to their end.

    driver = FraudProofDriver(chain, ipfs)            # exact experts: challenge / prove / timeout / claim
    dispute_id = driver.challenge(commitment, bundle.token(i))
    driver.settle(dispute_id, timeout=60)

    validator = Validator(chain, ipfs, ValidatorStore(path), ValidatorConfig(model_id, sample_rate=0.1))
    validator.run(stop_event)                         # what `bmoe validator` runs
"""
from .fraud import DisputeStatus, FraudProofDriver
from .service import Validator, ValidatorConfig, ValidatorStats
from .store import ValidatorStore

__all__ = ["DisputeStatus", "FraudProofDriver", "Validator", "ValidatorConfig", "ValidatorStats", "ValidatorStore"]
