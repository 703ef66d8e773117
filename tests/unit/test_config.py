"""Configuration: built once from the environment and .env; secrets never printed."""

from pathlib import Path

import pytest

from backend.config import Config
from backend.exceptions import ConfigError
from license.keys import generate, private_pem

PEM = private_pem(generate(), b"hunter2").decode()


def test_defaults_need_nothing_set():
    config = Config.from_env({})
    assert config.environment == "development" and config.license_signing_key is None


def test_the_environment_wins_over_the_dotenv_file(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DINGPASS_ENV=production\nDINGPASS_VAR_DIR=/srv/state\n")
    config = Config.from_env({"DINGPASS_ENV": "development"}, dotenv)
    assert config.environment == "development" and str(config.var_dir) == "/srv/state"


def test_a_bad_value_names_the_variable_and_the_choices():
    with pytest.raises(ConfigError, match="DINGPASS_ENV='prod' is not usable: must be one of"):
        Config.from_env({"DINGPASS_ENV": "prod"})


def test_public_key_files_are_a_comma_separated_list():
    config = Config.from_env({"LICENSE_PUBLIC_KEYS": "a.pub, b.pub,"})
    assert [str(p) for p in config.license_public_keys] == ["a.pub", "b.pub"]


def test_config_check_never_prints_a_secret(run_cli):
    env = {"LICENSE_SIGNING_KEY": PEM, "LICENSE_SIGNING_KEY_PASSPHRASE": "hunter2"}
    result = run_cli("config", "check", env=env)
    assert result.exit_code == 0, result.output
    assert PEM.splitlines()[1] not in result.output and "hunter2" not in result.output
    assert result.output.count("set (hidden)") == 2


def test_config_check_lists_what_production_is_missing_and_fails_there(run_cli):
    dev = run_cli("config", "check")
    prod = run_cli("config", "check", env={"DINGPASS_ENV": "production"})
    missing = dev.output.split("Missing for production:\n")[1]
    assert dev.exit_code == 0
    assert [line.split()[0] for line in missing.splitlines()] == [
        "DATABASE_URL",
        "PUBLIC_BASE_URL",
        "PROXY_SECRET",
        "DINGTALK_APP_KEY",
        "DINGTALK_APP_SECRET",
        "DINGTALK_PROCESS_CODE",
        "DINGTALK_ORIGINATOR_USER_ID",
        "SMTP_HOST",
        "MAIL_FROM",
        "LICENSE_SIGNING_KEY",
        "CODE_HASH_KEY",
    ]
    assert prod.exit_code == 1
    assert "FAIL  signing key: LICENSE_SIGNING_KEY is not set" in prod.output


def test_config_check_reports_a_wrong_passphrase(run_cli):
    locked = private_pem(generate(), b"right").decode()
    env = {"LICENSE_SIGNING_KEY": locked, "LICENSE_SIGNING_KEY_PASSPHRASE": "wrong"}
    result = run_cli("config", "check", env=env)
    assert result.exit_code == 1 and "passphrase is wrong" in result.output


def test_config_check_does_not_make_the_development_key(run_cli, tmp_path):
    run_cli("config", "check")
    assert not (tmp_path / "var").exists()


def test_config_check_says_which_proxy_hops_each_deployment_needs(run_cli):
    result = run_cli("config", "check")
    assert "ok    client addresses: TRUSTED_PROXY_HOPS=0" in result.output
    assert "1 behind Function Compute's HTTP trigger (it appends the caller's address" in (
        result.output
    )
    assert "0 when clients reach the frontend directly (`make run`, `dingpass dev`)" in (
        result.output
    )


def test_config_check_warns_that_trusted_hops_in_development_let_a_client_choose_its_ip(run_cli):
    result = run_cli("config", "check", env={"TRUSTED_PROXY_HOPS": "1"})
    assert result.exit_code == 0  # a warning, not a failure: a proxy may stand in front
    assert "WARN  client addresses: TRUSTED_PROXY_HOPS=1 in development" in result.output
    assert "escape the per-IP limit" in result.output


def test_config_check_warns_that_production_without_trusted_hops_shares_one_ip(run_cli):
    result = run_cli("config", "check", env={"DINGPASS_ENV": "production"})
    assert "WARN  client addresses: TRUSTED_PROXY_HOPS=0: behind Function Compute" in (
        result.output
    )


def test_resource_changes_go_to_the_cloud_sandbox_unless_in_production():
    assert Config.from_env({}).cloud_api == "http://127.0.0.1:8005"
    assert Config.from_env({"DINGPASS_ENV": "production"}).cloud_api is None  # the SDKs' own
    given = {"DINGPASS_ENV": "production", "CLOUD_ENDPOINT": "https://vpc.example.com"}
    assert Config.from_env(given).cloud_api == "https://vpc.example.com"


def test_the_clients_of_a_production_config_use_the_sdks_own_endpoints():
    from backend.cloud.clients import cloud_clients

    assert cloud_clients(Config.from_env({"DINGPASS_ENV": "production"})).endpoint is None


def test_a_configs_repr_shows_no_secret():
    config = Config.from_env(
        {"CLOUD_ACCESS_KEY_SECRET": "cloud-secret-1", "PROXY_SECRET": "proxy-secret-1"}
    )
    assert "cloud-secret-1" not in repr(config) and "proxy-secret-1" not in repr(config)


EXAMPLE_FORMS = Path(__file__).parents[2] / "change-forms.example.toml"


def test_config_check_says_which_changes_wait_for_dingtalk(run_cli):
    result = run_cli("config", "check", env={"CHANGE_FORMS_FILE": str(EXAMPLE_FORMS)})
    assert "ok    change forms: approved in DingTalk: ecs.instance, ram.user on " in result.output


def test_config_check_fails_a_request_form_mapping_a_parameter_its_type_lacks(run_cli, tmp_path):
    forms = tmp_path / "forms.toml"
    forms.write_text(
        '[[requests]]\nprocess_code = "P"\ntype = "ecs.instance"\n'
        '[requests.spec]\ninstance_typ = "实例规格"\n',
        encoding="utf-8",
    )
    result = run_cli("config", "check", env={"CHANGE_FORMS_FILE": str(forms)})
    assert result.exit_code == 1
    assert "FAIL  change forms: [[requests]] P: ecs.instance has no parameter instance_typ" in (
        result.output
    )


def test_a_change_forms_file_with_a_mistake_names_the_table_and_key(tmp_path):
    forms = tmp_path / "forms.toml"
    forms.write_text('[[approvals]]\nprocess_code = "P"\ntypes = "ecs.instance"\n')
    with pytest.raises(ConfigError, match=r"\[\[approvals\]\] number 1: types: a list"):
        Config.from_env({"CHANGE_FORMS_FILE": str(forms)})


def test_a_change_forms_file_listing_one_form_twice_is_refused(tmp_path):
    forms = tmp_path / "forms.toml"
    forms.write_text(
        '[[approvals]]\nprocess_code = "P"\ntypes = ["*"]\n'
        '[[requests]]\nprocess_code = "P"\ntype = "vpc"\n[requests.spec]\nname = "名称"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="process_code P is listed twice"):
        Config.from_env({"CHANGE_FORMS_FILE": str(forms)})


def test_config_check_fails_the_license_form_used_for_changes_too(run_cli):
    env = {"CHANGE_FORMS_FILE": str(EXAMPLE_FORMS), "DINGTALK_PROCESS_CODE": "PROC-SANDBOX-CHANGE"}
    result = run_cli("config", "check", env=env)
    assert result.exit_code == 1 and "is both DINGTALK_PROCESS_CODE" in result.output
