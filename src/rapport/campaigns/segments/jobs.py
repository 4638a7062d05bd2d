"""Jobs, schedules and event processors for campaigns' segments (imported by
rapport.campaigns.tasks)."""
