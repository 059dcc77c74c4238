"""Files in and out: the shipped literature datasets and the SBML export."""

from exopk.io import datasets
from exopk.io.datasets import Dataset, list_datasets, load_dataset, read_observations
from exopk.io.sbml import export_sbml

__all__ = ["Dataset", "datasets", "export_sbml", "list_datasets", "load_dataset", "read_observations"]
