# wtp shell integration: wtp shell-init fish | source   (in config.fish)
function wtp
    switch $argv[1]
        case cd
            if test (count $argv) -eq 1
                set -l dir (command wtp path --main); or return
                cd $dir
            else
                set -l dir (command wtp path $argv[2]); or return
                cd $dir
            end
        case start
            if contains -- --cd $argv
                set -l dir (command wtp (string match -v -- --cd $argv)); or return $status
                test -n "$dir"; and cd $dir
            else
                command wtp $argv
            end
        case land rm abandon
            set -l main (command wtp path --main 2>/dev/null)
            command wtp $argv
            set -l rc $status
            if not test -d $PWD; and test -n "$main"
                cd $main
            end
            return $rc
        case '*'
            command wtp $argv
    end
end
