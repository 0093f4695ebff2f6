# Splits a ThreadSanitizer log (log_path file) into the reports that concern kms and those that
# happen wholly inside the third-party libraries listed in tsan-third-party.txt. Used by
# scripts/sanitize:  awk -v list=tsan-third-party.txt -v kept=OUT -v dropped=OUT -f tsan-filter.awk LOG
#
# A report's "own" stacks are the two accesses of a data race, the lock acquisitions of a
# lock-order inversion, or else the first stack printed (mutex misuse, thread leak, signals).
# In each, the first frame that is not TSan's own interceptor (memcpy, free, pthread_mutex_lock,
# ...) is the code that did it. A report is dropped only when that frame is in a listed library
# for every one of its own stacks. A kms frame, libstdc++, an unlisted library or a stack TSan
# could not restore keeps it. A libc frame (vasprintf calling malloc...) counts as theirs only
# when it is the last frame: then no instrumented function, so no kms code, was on that thread.
# Where kms called the library further down the stack does not matter: GLib's memcpy racing
# with GStreamer's free is theirs either way, even on memory kms handed to them (the limit of
# this rule; $LOGS/third-party/ keeps those reports for reading).
BEGIN {
  while ((getline line < list) > 0) {
    sub(/#.*/, "", line); gsub(/[ \t]/, "", line)
    if (line != "") pat[++npat] = line
  }
}
function third_party(frame,   m, n, parts, i) {
  if (!match(frame, /\([^()]*\+0x[0-9a-f]+\)$/)) return 0
  m = substr(frame, RSTART + 1, RLENGTH - 2); sub(/\+0x[0-9a-f]+$/, "", m)
  n = split(m, parts, "/"); m = parts[n]
  for (i = 1; i <= npat; i++) if (index(m, pat[i]) == 1) return 1
  return 0
}
# The stack being read ends: a pending libc frame was the last one (theirs); a stack of TSan
# frames only is counted as ours.
function close_stack() {
  if (libc) theirs++; else if (want && seen) own++
  want = 0; seen = 0; libc = 0
}
/^WARNING: ThreadSanitizer:/ {
  inrep = 1; buf = ""; own = 0; theirs = 0; seen = 0; libc = 0
  special = ($0 ~ /data race|lock-order-inversion/)
  want = !special
}
# Outside a report: TSan's own fatal errors ("==PID==ThreadSanitizer: ...", "FATAL: ...") stay,
# so that they fail the run; separators and the closing count do not.
!inrep {
  if ($0 != "" && $0 !~ /^=+$/ && $0 !~ /^ThreadSanitizer: reported [0-9]+ warnings$/) print >> kept
  next
}
{ buf = buf $0 "\n" }
special && /^  (Previous )?([Aa]tomic )?([Rr]ead|[Ww]rite) of size|^  Mutex M[0-9]+ (acquired here while holding|previously acquired by the same thread)/ {
  close_stack(); want = 1; next
}
want && /^    #[0-9]+ / {
  seen = 1
  if (libc) { own++; want = 0; libc = 0; next }
  if ($0 ~ /\(libtsan\.so[^()]*\)$/) next
  if ($0 ~ /\(libc\.so\.6\+0x[0-9a-f]+\)$/) { libc = 1; next }
  if (third_party($0)) theirs++; else own++
  want = 0; next
}
want && seen { close_stack() }
want && /\[failed to restore the stack\]/ { own++; want = 0 }
/^SUMMARY: ThreadSanitizer:/ {
  close_stack()
  out = (own == 0 && theirs > 0) ? dropped : kept
  printf "==================\n%s==================\n", buf >> out
  inrep = 0
}
