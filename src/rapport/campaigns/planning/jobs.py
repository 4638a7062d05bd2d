"""Jobs, schedules and event processors for campaigns' planning (imported by
rapport.campaigns.tasks)."""
