# wtp shell integration: wtp shell-init fish | source   (in config.fish)
function wtp
    set -l c
    if test (count $argv) -ge 2; and test "$argv[1]" = -C  # 'wtp -C DIR cd t1' too
        set c -C $argv[2]
        set -e argv[1..2]
    end
    switch "$argv[1]"
        case cd
            if string match -q -- '-*' "$argv[2]"  # --help: shown, no cd
                command wtp $c $argv
            else if test (count $argv) -eq 1
                set -l dir (command wtp $c path --main); or return
                cd $dir
            else
                set -l dir (command wtp $c path $argv[2]); or return
                cd $dir
            end
        case start
            set -l args (string match -v -- --cd $argv)
            if contains -- --cd $argv; and not contains -- --json $argv
                set -l dir (command wtp $c $args)
                set -l rc $status
                test $rc -eq 0; and test -n "$dir"; and cd $dir
                return $rc
            end
            command wtp $c $args  # with --json: the JSON, shown, no cd
        case land rm abandon
            set -l main (command wtp $c path --main 2>/dev/null)
            command wtp $c $argv
            set -l rc $status
            if not test -d $PWD; and test -n "$main"
                cd $main
            end
            return $rc
        case '*'
            command wtp $c $argv
    end
end
