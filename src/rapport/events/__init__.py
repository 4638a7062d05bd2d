"""The event log: every fact about a customer, in order of arrival."""
