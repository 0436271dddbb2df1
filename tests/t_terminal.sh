#!/bin/bash
# SPDX-License-Identifier: MIT
# Programs nobody here wrote, used in a terminal as a person would: an
# interactive shell in a tmux pane runs sqlite3 (a line editor) and vim (a
# full-screen editor); each is dumped from outside while it waits for a
# key (the dump kills it: the shell gets its terminal back), then
# `capcr restore -j` is typed into the same shell.  The program must come
# back in the terminal's foreground process group (not stopped by
# SIGTTIN), with the terminal in the mode the program had set (no double
# echo), its unsaved state intact, and go on working: sqlite3 answers from
# the table made before the dump, vim writes the text typed before and
# after it, less (which opens /dev/tty itself) pages on from where it was.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "capcr restore needs root (clone3 with set_tid)"
for p in tmux sqlite3 vim less; do
	command -v "$p" >/dev/null || skip "$p missing (scripts/deps.sh installs it)"
done

SOCK=capcr-t-$$
TM=(tmux -L "$SOCK" -f /dev/null)
TMUX_PID=
PANE_PIDS=()
tm_cleanup() {
	local p
	for p in "${PANE_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "$TMUX_PID" ] && kill -KILL "$TMUX_PID" 2>/dev/null
	_cleanup
}
trap tm_cleanup EXIT
W=$((20 * TSCALE))

# pane_has REGEX [SECONDS]: the pane shows a line matching REGEX.
pane_has() {
	local i
	for ((i = 0; i < ${2:-$W} * 10; i++)); do
		"${TM[@]}" capture-pane -p -t t 2>/dev/null | grep -qE "$1" && return 0
		sleep 0.1
	done
	return 1
}
pane() { "${TM[@]}" capture-pane -p -t t | grep -v '^$'; }
# type TEXT: the keys of TEXT, literally, then Enter.  (tmux takes an
# argument's last ';' for the end of its command: that one goes as '\;'.)
type_line() {
	local s=$1 semi=()
	[ "${s%;}" != "$s" ] && s=${s%;} && semi=('\;')
	"${TM[@]}" send-keys -t t -l -- "$s"
	"${TM[@]}" send-keys -t t "${semi[@]}" Enter
}
# pid_of COMM: the one process named COMM in the pane's session.
pid_of() {
	local p
	for p in $(pgrep -s "$PANE_SID" -x "$1"); do
		echo "$p"
		return 0
	done
	return 1
}
wait_pid_of() {
	local i
	for ((i = 0; i < W * 10; i++)); do
		pid_of "$1" && return 0
		sleep 0.1
	done
	return 1
}
# foreground PID: PID exists and its group is its terminal's foreground
# group (within the usual wait: a restore ends a moment after its
# process shows on the screen).
foreground() {
	local i g
	for ((i = 0; i < W * 10; i++)); do
		g=$(_stat_field "$1" 3)
		[ -n "$g" ] && [ "$g" = "$(_stat_field "$1" 6)" ] && return 0
		sleep 0.1
	done
	return 1
}

# dump_outside NAME PID: PID dumped by capcr from outside the pane into
# $T/NAME.img (which kills it); the shell gets its terminal back.
dump_outside() {
	mkdir "$T/$1.img"
	check "$1 (pid $2) dumped from outside" "$CAPCR" dump -j -t "$2" -D "$T/$1.img"
	check "the shell has its terminal back" pane_has '^tsh>$'
}
# restore_typed NAME [FIRST]: `capcr restore -j` of $T/NAME.img typed into
# the shell (after the command FIRST), which echoes its status after it.
restore_typed() {
	type_line "${2:+$2; }$CAPCR restore -j -D $T/$1.img; echo restore-status=\$?"
}
clear_screen() {
	"${TM[@]}" send-keys -t t "clear" Enter
	pane_has '^tsh>$'
}

"${TM[@]}" new-session -d -s t -x 100 -y 24 "env -i TERM=xterm HOME=$T PS1='tsh> ' bash --norc -i"
TMUX_PID=$("${TM[@]}" display-message -p '#{pid}')
SHELL_PID=$("${TM[@]}" display-message -p -t t '#{pane_pid}')
PANE_SID=$(_stat_field "$SHELL_PID" 4)
PANE_PIDS+=("$SHELL_PID")
check "the shell in the pane starts" pane_has '^tsh>'

# --- sqlite3: a table made before the dump, queried after the restore
type_line "sqlite3"
check "sqlite3 starts" pane_has '^sqlite>'
type_line "create table t(x); insert into t values(21);"
pane_has 'values\(21\);$' && pane_has '^sqlite>$'
SQ=$(wait_pid_of sqlite3)
PANE_PIDS+=("$SQ")
dump_outside sqlite3 "$SQ"
restore_typed sqlite3
SQ2=$(wait_pid_of sqlite3)
PANE_PIDS+=("$SQ2")
check "sqlite3 is back with its PID" test "$SQ2" = "$SQ"
sleep 0.3
check "sqlite3 is in the terminal's foreground group" foreground "$SQ"
check "sqlite3 is not stopped" test "$(_stat_field "$SQ" 1)" != T
type_line "select x * 2 from t;"
check "sqlite3 answers from the table made before the dump" pane_has '^42$'
check "the terminal has sqlite3's settings back (the line is echoed once)" \
	test "$(pane | grep -c 'select x \* 2 from t;')" -eq 1
type_line ".quit"
check "sqlite3 quits, capcr restore passes its status on" \
	pane_has '^restore-status=0$'
check "the shell has its terminal back after sqlite3" pane_has '^tsh>$'
clear_screen

# --- vim: an unsaved edit across the dump
F=$T/vim.txt
type_line "vim -u NONE -N -n $F"
check "vim starts" pane_has '^~'
"${TM[@]}" send-keys -t t -l "ibefore the dump"
"${TM[@]}" send-keys -t t Escape
pane_has '^before the dump'
VI=$(wait_pid_of vim)
PANE_PIDS+=("$VI")
sleep 0.3
dump_outside vim "$VI"
check "the edit was not saved" test ! -e "$F"
restore_typed vim clear
check "vim redraws its screen with the unsaved edit" pane_has '^before the dump'
VI2=$(wait_pid_of vim)
check "vim is back with its PID" test "$VI2" = "$VI"
check "vim is in the terminal's foreground group" foreground "$VI"
"${TM[@]}" send-keys -t t -l "A, after it"
"${TM[@]}" send-keys -t t Escape
pane_has '^before the dump, after it'
type_line ":wq"
check "vim ends, capcr restore passes its status on" pane_has '^restore-status=0$'
check "vim wrote the text typed before and after the dump" \
	test "$(cat "$F" 2>/dev/null)" = "before the dump, after it"
clear_screen

# --- less: a pager holding /dev/tty, at the end of a file
seq 1 500 >"$T/lines"
type_line "less $T/lines"
check "less starts" pane_has '^1$'
"${TM[@]}" send-keys -t t "G"
pane_has '^\(END\)'
LS=$(wait_pid_of less)
PANE_PIDS+=("$LS")
dump_outside less "$LS"
restore_typed less clear
check "less redraws where it was (line 500, END)" pane_has '^500$'
check "less is in the terminal's foreground group" foreground "$LS"
"${TM[@]}" send-keys -t t "g"
check "less goes to the top of the file" pane_has '^1$'
"${TM[@]}" send-keys -t t "q"
check "less ends, capcr restore passes its status on" pane_has '^restore-status=0$'
if [ "$FAILS" -gt 0 ]; then
	echo "---- the pane:"
	pane | tail -n 20
fi
finish
