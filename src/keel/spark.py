"""``keel.spark``: Keel's mergeable profiles computed on Apache Spark (``keel-mlops[spark]``).

The implementation is `keel.sdk.spark`; this module is its short public name::

    import keel.spark
    reference = keel.spark.profile(training_df)
    window = keel.spark.profile(scored_df, reference=reference)
"""

from __future__ import annotations

from keel.sdk.spark import profile, quiet_pandas_check, spark_session

__all__ = ["profile", "quiet_pandas_check", "spark_session"]
