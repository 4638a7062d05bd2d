"""Typed events the campaigns domain appends (none yet: deliveries keep their own history)."""
