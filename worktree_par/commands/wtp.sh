# wtp shell integration: eval "$(wtp shell-init bash)" (or zsh) in your rc file.
wtp() {
  local _wtp_dir _wtp_main _wtp_rc _wtp_arg _wtp_cd=0 _wtp_json=0
  local -a _wtp_c=()
  if [ "$1" = "-C" ] && [ $# -ge 2 ]; then _wtp_c=(-C "$2"); shift 2; fi  # 'wtp -C DIR cd t1' too
  case "$1" in
    cd)
      shift
      case "$1" in -*) command wtp ${_wtp_c[@]+"${_wtp_c[@]}"} cd "$@"; return ;; esac  # --help: shown, no cd
      if [ $# -eq 0 ]; then _wtp_dir=$(command wtp ${_wtp_c[@]+"${_wtp_c[@]}"} path --main) || return
      else _wtp_dir=$(command wtp ${_wtp_c[@]+"${_wtp_c[@]}"} path "$1") || return; fi
      cd "$_wtp_dir" ;;
    start)
      local -a _wtp_args
      for _wtp_arg in "$@"; do
        if [ "$_wtp_arg" = "--cd" ]; then _wtp_cd=1; else _wtp_args+=("$_wtp_arg"); fi
        [ "$_wtp_arg" = "--json" ] && _wtp_json=1
      done
      if [ "$_wtp_cd" = 1 ] && [ "$_wtp_json" = 0 ]; then
        _wtp_dir=$(command wtp ${_wtp_c[@]+"${_wtp_c[@]}"} "${_wtp_args[@]}"); _wtp_rc=$?
        [ $_wtp_rc -eq 0 ] && [ -n "$_wtp_dir" ] && cd "$_wtp_dir"
        return $_wtp_rc
      fi
      command wtp ${_wtp_c[@]+"${_wtp_c[@]}"} "${_wtp_args[@]}" ;;  # with --json: the JSON, shown, no cd
    land|rm|abandon)
      _wtp_main=$(command wtp ${_wtp_c[@]+"${_wtp_c[@]}"} path --main 2>/dev/null)
      command wtp ${_wtp_c[@]+"${_wtp_c[@]}"} "$@"; _wtp_rc=$?
      if [ ! -d "$PWD" ] && [ -n "$_wtp_main" ]; then cd "$_wtp_main"; fi
      return $_wtp_rc ;;
    *) command wtp ${_wtp_c[@]+"${_wtp_c[@]}"} "$@" ;;
  esac
}
