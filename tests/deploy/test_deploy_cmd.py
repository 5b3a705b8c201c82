"""`bmoe deploy`: shows the manifest of the chain at --rpc and whether the deployment is still there."""
import json

from bmoe_py.cli.main import main


def test_shows_the_live_deployment(deployed, deployments, rpc_url, capsys):
    assert main(["deploy", "--rpc", rpc_url, "--deployments", str(deployments)]) == 0
    out = capsys.readouterr().out
    assert f"Staking           {deployed['Staking'].address}" in out
    assert "status: live" in out


def test_json_output_has_addresses_and_no_abis(deployed, deployments, rpc_url, capsys):
    assert main(["deploy", "--rpc", rpc_url, "--deployments", str(deployments), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["contracts"]["FraudProof"]["address"] == deployed["FraudProof"].address
    assert "abi" not in data["contracts"]["FraudProof"]
    assert data["live"] is True


def test_stale_manifest_exits_nonzero(deployed, deployments, rpc_url, tmp_path, capsys):
    data = json.loads(next(deployments.glob("*.json")).read_text())
    data["deploy_block_hash"] = "0x" + "00" * 32
    (tmp_path / f"{data['chain_id']}.json").write_text(json.dumps(data))
    assert main(["deploy", "--rpc", rpc_url, "--deployments", str(tmp_path)]) == 1
    assert "status: STALE" in capsys.readouterr().out


def test_missing_manifest_says_how_to_deploy(rpc_url, tmp_path, capsys):
    assert main(["deploy", "--rpc", rpc_url, "--deployments", str(tmp_path)]) == 1
    assert "run `make deploy`" in capsys.readouterr().err
