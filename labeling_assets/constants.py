"""Names shared across the project: asset groups (one per stage folder), pools, defaults."""

from pathlib import Path

# Asset groups: a UI group maps straight to a module in labeling_assets/assets/.
GROUP_INGEST = "ingest"
GROUP_PRELABEL = "prelabel"
GROUP_QUEUE = "queue"
GROUP_COLLECT = "collect"
GROUP_CONSENSUS = "consensus"
GROUP_QUALITY = "quality"
GROUP_REVIEW = "review"  # spot checks: a human review queue, on its own schedule (not on the annotation path)
GROUP_DATASET = "dataset"
GROUP_TRAIN = "train"
GROUP_EVALUATE = "evaluate"
GROUP_SWEEP = "sweep"  # training sweeps: a grid of configurations, off the default loop's path (its own jobs)

# Training and evaluation share one GPU: dagster.yaml gives this pool a limit of 1.
GPU_POOL = "gpu"
# One Label Studio sync at a time (the annotations step; limit 1, dagster.yaml's pools default_limit).
SYNC_POOL = "labelstudio_sync"
# One labeling_tasks run at a time: the intake chain and the queue top-up sensor may both launch queue_job,
# and two runs choosing the next batch at once would race.
QUEUE_POOL = "labelstudio_queue"

OWNERS = ["team:ml-labeling"]

REPO_ROOT = Path(__file__).resolve().parent.parent
# The data folder every written path derives from: labeling_assets.env.data_dir() ($LABELING_ASSETS_HOME).


# The bundled demo set: scikit-learn's handwritten digits, rendered once to PNG.
DEMO_CLASSES: list[str] = [str(d) for d in range(10)]
