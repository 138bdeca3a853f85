# man/local.mk - manual pages; each owner lists its pages in its own fragment.
