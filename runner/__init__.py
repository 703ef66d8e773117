"""The runner function: takes Function Compute's timer and kicks, and runs due jobs."""
