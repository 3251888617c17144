"""Measuring models: peak memory, latency and throughput per concurrency level.

Importing this package is cheap; torch and nvidia-ml-py are imported only by the backends.
"""
