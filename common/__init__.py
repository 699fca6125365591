"""What the API and the workers share: settings, the database, and the job store."""
