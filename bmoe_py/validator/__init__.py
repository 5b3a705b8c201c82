"""The validator role: watch commitments, re-execute a sample, and carry disputes to their end.

    driver = FraudProofDriver(chain, ipfs)            # exact experts: challenge / prove / timeout / claim
    dispute_id = driver.challenge(commitment, bundle.token(i))
    driver.settle(dispute_id, timeout=60)
"""
from .fraud import DisputeStatus, FraudProofDriver

__all__ = ["DisputeStatus", "FraudProofDriver"]
