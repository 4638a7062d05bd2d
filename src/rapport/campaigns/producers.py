"""Other domains' facts that become messages (late-delivery notices, survey invitations,
apologies, member announcements, CX alerts), as transactional campaigns."""
