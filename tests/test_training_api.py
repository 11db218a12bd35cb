"""Fine-tuning through the Gradio API of the running app: start, status with the training pid, stop,
resume, and the operator lock (real app, tiny base model so a run takes seconds)."""

import time

import pytest

from tests.app_server import running_app

pytestmark = pytest.mark.real
SAMPLE = "finetune/samples/sentiment_en.csv"


def wait(client, job_id, password="", until=("finished", "failed", "stopped"), timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.predict(job_id, password, api_name="/finetune_status")
        if status["state"] in until:
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {status['state']}")


def test_start_follow_stop_resume(tmp_path, tiny_bert_dir):
    from gradio_client import Client, handle_file

    with running_app(env={"ASSISTANT_DATA_DIR": str(tmp_path)}) as url:
        client = Client(url, verbose=False)
        started = client.predict(handle_file(SAMPLE), "classification", str(tiny_bert_dir), "head", "supervised",
                                 400, 1.0, "api-head", "", api_name="/finetune_start")
        assert set(started) == {"job_id", "run_id"}
        running = wait(client, started["job_id"], until=("running",))
        deadline = time.monotonic() + 120
        while running["step"] < 2 and time.monotonic() < deadline:
            running = client.predict(started["job_id"], "", api_name="/finetune_status")
        assert isinstance(running["pid"], int) and running["total_steps"] == 400 and running["loss"] is not None
        client.predict(started["job_id"], "", api_name="/finetune_stop")
        stopped = wait(client, started["job_id"])
        assert stopped["state"] == "stopped" and stopped["resumable"] and stopped["pid"] is None
        resumed = client.predict(started["job_id"], "", api_name="/finetune_resume")
        assert resumed["run_id"] == started["run_id"] and resumed["job_id"] != started["job_id"]
        client.predict(resumed["job_id"], "", api_name="/finetune_stop")
        assert wait(client, resumed["job_id"])["state"] in ("stopped", "finished")
        with pytest.raises(Exception, match="Adapter name"):
            client.predict(handle_file(SAMPLE), "classification", "", "auto", "supervised", 2, 1.0, "../evil", "",
                           api_name="/finetune_start")


def test_the_operator_password_locks_the_training_api(tmp_path):
    from gradio_client import Client, handle_file

    with running_app(env={"ASSISTANT_DATA_DIR": str(tmp_path), "ASSISTANT_ADMIN_PASSWORD": "op-secret"}) as url:
        client = Client(url, verbose=False)
        for call, args in (("/finetune_start", (handle_file(SAMPLE), "classification", "", "auto", "supervised", 2,
                                                1.0, "x", "wrong")),
                           ("/finetune_status", ("job-1", "")), ("/finetune_stop", ("job-1", "")),
                           ("/finetune_resume", ("job-1", ""))):
            with pytest.raises(Exception, match="Wrong password|Too many wrong passwords"):
                client.predict(*args, api_name=call)
        assert not (tmp_path / "runs").exists()
