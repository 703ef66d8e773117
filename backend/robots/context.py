"""What the robots' jobs need, built once per runner from the configuration."""

from dataclasses import dataclass, field
from datetime import timedelta

from backend import defaults
from backend.robots.clients import RobotClient
from backend.robots.config import Robot
from backend.robots.errors import UnknownRobot


@dataclass(frozen=True)
class RobotContext:
    """The robots, how to reach them, and how fast they may be sent to."""

    robots: tuple[Robot, ...] = ()
    client: RobotClient | None = None  # None: no robots to send to
    public_base_url: str = defaults.PUBLIC_BASE_URL
    per_minute: int = defaults.ROBOT_MESSAGES_PER_MINUTE
    window: timedelta = timedelta(seconds=defaults.ROBOT_WINDOW)
    gather: timedelta = timedelta(seconds=defaults.ROBOT_GATHER)
    digest_max: int = defaults.ROBOT_DIGEST_MAX
    pause: timedelta = field(default=timedelta(seconds=defaults.ROBOT_THROTTLE_PAUSE))

    def robot(self, name: str) -> Robot:
        """The robot called ``name``; UnknownRobot, naming those there are, if none is."""
        for robot in self.robots:
            if robot.name == name:
                return robot
        known = ", ".join(r.name for r in self.robots) or "none: set ROBOTS_FILE"
        raise UnknownRobot(f"no robot is called {name!r} in ROBOTS_FILE (robots: {known})")

    def sender(self) -> RobotClient:
        """The client that posts to webhooks."""
        if self.client is None:
            raise UnknownRobot("no robot client: the runner was built without robots")
        return self.client
