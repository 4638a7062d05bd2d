"""Paid membership: plans, a member's membership from joining to lapse, what it paid and saved
them, analytics of paying vs free vs non-members, and the program's announcements to members;
their API routes, admin pages and jobs."""
