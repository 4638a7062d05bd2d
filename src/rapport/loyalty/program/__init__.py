"""The loyalty program's rules of the game: configuration versions (earning rules, tier ladder,
checkout caps), the earning rules language, the simulator, and their API and admin pages."""
