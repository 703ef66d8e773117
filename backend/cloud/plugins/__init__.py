"""The resource plugins, one module per resource type, registered in one place."""

from backend.cloud.plugins.base import Plugins
from backend.cloud.plugins.ecs_instance import EcsInstancePlugin
from backend.cloud.plugins.ram_user import RamUserPlugin
from backend.cloud.plugins.security_group import SecurityGroupPlugin
from backend.cloud.plugins.vpc import VpcPlugin
from backend.cloud.plugins.vswitch import VSwitchPlugin


def all_plugins() -> Plugins:
    """Every resource type dingpass can create, by type."""
    plugins = Plugins()
    for plugin in (
        VpcPlugin(),
        VSwitchPlugin(),
        SecurityGroupPlugin(),
        EcsInstancePlugin(),
        RamUserPlugin(),
    ):
        plugins.register(plugin)
    return plugins
