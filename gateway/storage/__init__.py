"""Storage shared by features: the SQL layer under the job store and the session store."""
