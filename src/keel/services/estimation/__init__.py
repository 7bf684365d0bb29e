"""Label-free performance estimation: the reference fit (a job), the stored estimator, and the
``estimated_performance`` monitor check."""
