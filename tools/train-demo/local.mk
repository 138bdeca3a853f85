# tools/train-demo/local.mk - the demo model: its exporter, the shipped
# model and the check that ktx runs it as PyTorch trained it.
# Included by the top-level Makefile.am. Training itself (train.py, PyTorch)
# is run by maintainers only; see tools/train-demo/README.md.
noinst_PROGRAMS += ktx-demo-export
ktx_demo_export_SOURCES = tools/train-demo/export.c
ktx_demo_export_LDADD = $(ENGINE_LIBS)

# ktxd's default model (KTX_DATADIR/demo.gguf, see daemon/conf.c).
dist_pkgdata_DATA = models/demo.gguf

TESTS += tests/oracle/test_demo_perplexity.py
EXTRA_DIST += tests/oracle/test_demo_perplexity.py models/README.md \
	tools/train-demo/README.md tools/train-demo/retrain.sh tools/train-demo/ggufpy.py \
	tools/train-demo/mkvocab.py tools/train-demo/mkcorpus.py tools/train-demo/dsmodel.py \
	tools/train-demo/train.py tools/train-demo/evaluate.py tools/train-demo/plot.py \
	tools/train-demo/curve.csv tools/train-demo/curve.png tools/train-demo/heldout.json \
	tools/train-demo/heldout-test.txt tools/train-demo/heldout-test.ids
