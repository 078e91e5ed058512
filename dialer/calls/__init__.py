"""What happens on one call of an agentless campaign: the IVR flows (survey questions,
appointment reminders) as pure state machines, and the shell that runs them on `Lines`."""
