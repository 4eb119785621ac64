"""Wiring only: one Definitions object, partitions, jobs, schedules, sensors, environments."""
