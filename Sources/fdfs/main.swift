print("fdfs")
