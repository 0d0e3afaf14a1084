"""The store on object storage: an S3 URI against moto's S3 server (a real HTTP S3 API on
localhost), with the storage options a MinIO or other S3-compatible endpoint needs. There are no
file locks there and the remembered-state shortcuts are off (docs/store.md): writes must still be
keyed, stages cached and bag reads exact, and embed staging must reach the same bucket."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pmx.featurestore import open_store
from pmx.featurestore.bagloader import BagLoader
from pmx.featurestore.datasets import BagDataset

moto_server = pytest.importorskip("moto.server")  # in the dev extra; skipped only without it


@pytest.fixture(scope="module")
def s3():
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = {"endpoint": endpoint, "allow_http": "true", "aws_access_key_id": "test",
               "aws_secret_access_key": "test", "region": "us-east-1"}
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
    client.create_bucket(Bucket="pmx")
    yield options, client
    server.stop()


def _vectors(i: int, n: int = 6) -> np.ndarray:
    return np.random.default_rng(i).standard_normal((n, 8)).astype(np.float32)


def test_tables_stage_cache_and_bag_reads_on_s3(s3):
    options, client = s3
    store = open_store("s3://pmx/store-a", storage_options=options)
    assert store.local_dir is None
    store.upsert("patients", [{"patient_id": "P1", "time": 3.0, "event": True},
                              {"patient_id": "P2", "time": 5.0, "event": False}])
    slides = ["S0", "S1", "S2"]
    with store.stage("embed", fingerprint="enc-v1", units=slides) as stage:
        for i, slide in enumerate(stage.pending()):
            n = store.write_embeddings("enc", slide, _vectors(i), patient_id="P1" if i < 2 else "P2")
            stage.done(slide, rows=n)
    store.write_embeddings("enc", "S2", _vectors(2), patient_id="P2")  # a rewrite: still keyed
    assert store.count("embeddings") == 18 and store.count("patients") == 2
    for _ in range(4):  # the first reads are queries, then range reads through the bag index
        np.testing.assert_array_equal(store.read_bag("enc", patient_id="P1"),
                                      np.concatenate([_vectors(0), _vectors(1)]))
    with store.stage("embed", fingerprint="enc-v1", units=slides) as again:
        assert again.cached and list(again.pending()) == []
    items = list(BagLoader(BagDataset(store, "enc"), prefetch=2))
    assert [(i["patient_id"], tuple(i["features"].shape)) for i in items] == [("P1", (12, 8)),
                                                                               ("P2", (6, 8))]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="pmx", Prefix="store-a/")["Contents"]]
    assert any(k.startswith("store-a/embeddings__enc.lance/data/") for k in keys)


def test_embed_staging_reaches_the_stores_bucket(s3):
    from pmx.embedding.staging import Staging, default_staging_uri

    options, client = s3
    store = open_store("s3://pmx/store-b", storage_options=options)
    staging = Staging(default_staging_uri(store), "key1", store.storage_options)
    rows = pa.table({"slide_id": ["S/1"] * 3, "x": [0, 1, 2]})
    staging.write("S/1", rows)
    assert staging.staged() == {"S/1"} and staging.read("S/1").equals(rows)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="pmx", Prefix="store-b/")["Contents"]]
    assert [k for k in keys if not k.endswith("/")] == ["store-b/_staging/embed/key1/S%2F1.arrow"]
    staging.remove("S/1")
    staging.tidy()
    assert staging.staged() == set() and staging.read("S/1") is None


def test_a_cli_user_configures_s3_through_the_environment(s3, monkeypatch):
    """`pmx ... --store s3://...` has no storage options: Lance's AWS_* variables must bring
    both the store and the embed staging to the endpoint (not to AWS)."""
    from pmx.embedding.staging import Staging, default_staging_uri

    options, client = s3
    for key, value in {"AWS_ENDPOINT": options["endpoint"], "AWS_ALLOW_HTTP": "true",
                       "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    store = open_store("s3://pmx/store-c")
    store.upsert("patients", [{"patient_id": "P1", "time": 3.0, "event": True}])
    staging = Staging(default_staging_uri(store), "key2", store.storage_options)
    staging.write("S1", pa.table({"x": [1, 2]}))
    assert store.count("patients") == 1 and staging.staged() == {"S1"}
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="pmx", Prefix="store-c/")["Contents"]]
    assert "store-c/_staging/embed/key2/S1.arrow" in keys
