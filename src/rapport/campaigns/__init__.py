"""Campaigns: segments, channels (email, webhooks, in-app inbox), deliveries with consent,
caps and quiet hours checked at send time, triggered and local campaigns, control groups and
uplift. Every message Rapport sends goes through here."""
