"""Plan stage: from what an input is and the limits in force, decide what to do to it."""
