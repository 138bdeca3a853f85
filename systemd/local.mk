# systemd/local.mk - the systemd units, sysusers.d and tmpfiles.d snippets.
# Included by the top-level Makefile.am.
#
# The unit directories follow systemd's layout under $(prefix); packagers
# override them on the make command line (make systemdunitdir=...).
systemdunitdir = $(prefix)/lib/systemd/system
sysusersdir = $(prefix)/lib/sysusers.d
tmpfilesdir = $(prefix)/lib/tmpfiles.d

systemdunit_DATA = systemd/ktxd.service systemd/ktxd.socket
dist_sysusers_DATA = systemd/sysusers.d/ktx.conf
dist_tmpfiles_DATA = systemd/tmpfiles.d/ktx.conf
CLEANFILES += systemd/ktxd.service
EXTRA_DIST += systemd/ktxd.service.in systemd/ktxd.socket

systemd/ktxd.service: $(top_srcdir)/systemd/ktxd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' $(top_srcdir)/systemd/ktxd.service.in > $@.tmp && \
	mv $@.tmp $@

TESTS += tests/integration/test_units.py
EXTRA_DIST += tests/integration/test_units.py
