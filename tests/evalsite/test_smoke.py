import pytest
from django.db import OperationalError

from annotations import api
from tests.support.annotation_data import make_campaign


@pytest.mark.django_db
def test_healthz_answers_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_tiny_llama_generates_text(tiny_llama_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir))
    ids = tokenizer("The battery life", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5


@pytest.mark.django_db
def test_a_database_outage_answers_503_with_retry_after_not_500(client, annotator, monkeypatch):
    campaign = make_campaign(prompts=2)

    def down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(api, "assignment_next", down)
    client.force_login(annotator)
    response = client.get(f"/api/campaigns/{campaign.pk}/next/")
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert response.json() == {"detail": "The database is unavailable for a moment; please retry."}
