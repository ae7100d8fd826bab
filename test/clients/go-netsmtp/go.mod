module go-netsmtp

go 1.19
