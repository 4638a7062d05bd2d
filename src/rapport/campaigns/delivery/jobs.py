"""Jobs, schedules and event processors for campaigns' delivery (imported by
rapport.campaigns.tasks)."""
