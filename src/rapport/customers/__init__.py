"""Customer profiles, identities, consent and privacy rights."""
