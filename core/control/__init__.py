"""The controllability lab: short, budgeted training runs that decide how the model learns control."""
