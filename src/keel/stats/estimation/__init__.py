"""Performance estimated before labels arrive: CBPE for classifiers; DLE's window arithmetic
for regressors (its error model is fitted in `keel.services.estimation`)."""
