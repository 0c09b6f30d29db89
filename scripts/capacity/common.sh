# Shared by the capacity scripts (sourced): ADMIN names the PostgreSQL server.

# check_disk NEED_MB LABEL: refuses (exit 1) when the disk holding PostgreSQL's data has less than
# NEED_MB free, after saying what the run will use.
check_disk() {
  local need_mb="$1" label="$2" data_dir free_mb
  data_dir="$(psql "$ADMIN" -Atc 'SHOW data_directory' 2>/dev/null || echo /)"
  free_mb="$(df -Pm "$data_dir" 2>/dev/null | awk 'NR==2 {print $4}')"
  echo "$label: will use about $(( need_mb / 2 )) MB; ${free_mb:-?} MB free"
  if [ -n "$free_mb" ] && [ "$free_mb" -lt "$need_mb" ]; then
    echo "$label: not enough free disk (want $need_mb MB)" >&2
    exit 1
  fi
}
