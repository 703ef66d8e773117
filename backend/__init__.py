"""The core: applications, storage, DingTalk client, jobs and plugins, mail, CLI."""
