"""Surveys: definitions and their wording, invitations (the consent gate, sampling and fatigue),
signed links, answers, and the invitations that events in the log trigger."""
