"""Jobs: work recorded with the state change that calls for it, run by any number of runners."""
