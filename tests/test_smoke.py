import modelyard as yard


def test_roundtrip_on_both_backends(workspace) -> None:
    with yard.start_run(experiment="churn", name="baseline", params={"lr": 0.01}) as run:
        for step in range(100):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"acc": 0.91, "nan": float("nan"), "inf": float("inf")})
    rec = yard.get_run(run.id)
    assert rec.status.value == "finished"
    assert rec.params == {"lr": "0.01"}
    assert rec.metrics["loss"] == 0.01
    assert rec.metrics["nan"] != rec.metrics["nan"]
    assert rec.metrics["inf"] == float("inf")
    found = yard.search_runs("churn", filter="metrics.acc > 0.9 and params.lr = '0.01'")
    assert [r.id for r in found] == [run.id]
