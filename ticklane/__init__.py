"""ticklane: an automated trading pipeline on Kafka.

This package is the kernel the four processes share.
"""

__version__ = "0.1.0"
