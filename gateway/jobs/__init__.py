"""Long CLI calls as jobs: submitted, watched live and cancelled from any gateway instance."""
